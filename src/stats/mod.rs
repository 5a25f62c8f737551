//! stats stage (work in progress).
