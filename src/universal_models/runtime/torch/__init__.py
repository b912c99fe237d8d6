"""The torch backend's code: GraphModel's plan (:mod:`.plan`), the layers' fast-path kernels
(:mod:`.kernels`) and memory layouts (:mod:`.memory_format`).

Imported only when Keras runs on torch.
"""
