//! Metal backend (being built).
