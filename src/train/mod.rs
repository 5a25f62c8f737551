//! train stage (work in progress).
