//! Report statistics and roofline math (being built).
