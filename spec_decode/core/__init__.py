"""The decoding core: contract, sampling, keys, rejection, steps, state, decoder, validation.

Nothing here imports a model: models meet the core through ``contract.LanguageModel``.
"""
