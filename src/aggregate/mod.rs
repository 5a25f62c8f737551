//! aggregate stage (work in progress).
