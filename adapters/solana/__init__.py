"""The Solana adapters. Among them: program ids, PDAs and error tables (`programs`),
account byte layouts (one module per program: `raydium_cpmm_layouts`,
`meteora_damm_v2_layouts`, `token_layouts`, over the shared `layout_fields`), and
instruction builders and parsers (`instructions`). The swap math they feed lives in
`domain.curves`.
"""
