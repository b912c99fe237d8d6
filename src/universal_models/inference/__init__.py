"""Using trained models: tiled prediction, streaming, export, loading and scoring.

- :mod:`.tiled`: full-size prediction of images of any size by overlapping tiles.
- :mod:`.stateful`: frame-by-frame (streaming) twins of the recurrent models, rollouts.
- :mod:`.export`: ONNX export and an onnxruntime predictor.
- :mod:`.loading`: :func:`load_model`, safe loading with errors that say what is wrong.
- :mod:`.evaluation`: scores from a confusion matrix accumulated image by image.

``from universal_models.inference import predict_images`` works as before.
"""

from .tiled import (
    blend_window,
    fixed_input_size,
    keras_predictor,
    labels_from_probabilities,
    predict_images,
    predict_tiled,
)

__all__ = [
    "blend_window", "fixed_input_size", "keras_predictor", "labels_from_probabilities", "predict_images",
    "predict_tiled",
]
