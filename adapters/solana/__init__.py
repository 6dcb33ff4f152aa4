"""The Solana adapters. Among them: program ids, PDAs and error tables (`programs`),
account byte layouts (`layouts`), and instruction builders and parsers
(`instructions`). The swap math they feed lives in `domain.curves`.
"""
