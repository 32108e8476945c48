//! Charts (being built).
