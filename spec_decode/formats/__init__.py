"""Weight formats: reading (and writing) other tools' files into the models' parameter trees.

    t5x/       T5X checkpoints, legacy (msgpack + tensorstore zarr) and Orbax; no t5x needed
    gguf/      llama.cpp's GGUF files: the reader and the mapping onto ``LlamaLM`` params
    hf_llama   ``LlamaLM`` params -> a transformers ``LlamaForCausalLM`` (peers, parity tests)

Each needs its own optional dependencies, so this package imports none of them: import the
subpackage you use.
"""
