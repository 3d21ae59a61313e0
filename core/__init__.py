"""sentitune's UI-free core: config, data, tokenize, model, train, metrics, predict, runs, cli.

Importing `core` is cheap: heavy libraries (torch, transformers, datasets) load when first used.
"""

__version__ = "0.1.0"
