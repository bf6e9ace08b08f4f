"""A trained model outside torch: the exported classifier, ONNX, int8, onnxruntime.

- :mod:`~facefactors.export.classifier`: ``ExpressionClassifier`` (E_exp + C_exp) and
  :func:`load_expression_model` for ``model.pt``, training checkpoints and ``.onnx``.
- :mod:`~facefactors.export.onnx`: ONNX export with a dynamic batch, parity-checked.
- :mod:`~facefactors.export.quantize`: static int8 quantisation, synthetic calibration.
- :mod:`~facefactors.export.runtime`: ``OnnxExpressionClassifier`` on onnxruntime.

Nothing here imports a method package: methods write the export format, this
package reads it.
"""
