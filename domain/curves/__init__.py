"""The pool programs' swap math, exact to the unit: Raydium CPMM and Meteora DAMM v2.

Pure integer arithmetic (standard library and msgspec only) reproducing each
program's rounding and failure cases, shared by the engine's quotes and by the
local chain's emulation of the programs. `errors` holds the error types and the
programs' error tables; `damm_v2_fees` the DAMM v2 fee apart from its swap step
(`damm_v2`); `integers` the Rust integer bounds they check against.
"""
