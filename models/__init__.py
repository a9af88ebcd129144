"""Model training, evaluation, ONNX export and the model registry."""
