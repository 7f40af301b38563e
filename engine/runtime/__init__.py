"""Model runtimes. ``engine.runtime.llama`` is the only module that imports llama_cpp."""
