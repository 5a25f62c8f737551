//! heads stage (work in progress).
