"""The torch backend's code: GraphModel's plan (:mod:`.plan`) and memory layouts (:mod:`.memory_format`).

Imported only when Keras runs on torch.
"""
