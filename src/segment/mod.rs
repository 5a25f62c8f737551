//! segment stage (work in progress).
