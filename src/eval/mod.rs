//! eval stage (work in progress).
