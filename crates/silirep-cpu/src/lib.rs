//! CPU backend (being built).
