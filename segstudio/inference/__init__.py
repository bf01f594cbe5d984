"""Turning a network into segmentations: model files, the predictor, ONNX export, batch folders."""
