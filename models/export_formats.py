"""The export formats (stdlib only, so ``devise export --help`` lists them without loading Keras).

devise's name -> (``keras.Model.export`` format, the artefact's name inside the export folder).
"""

FORMATS = {
    "savedmodel": ("tf_saved_model", "saved_model"),  # TensorFlow SavedModel folder, signature "serve"
    "tflite": ("litert", "model.tflite"),             # LiteRT / TFLite flatbuffer (tf.lite.TFLiteConverter)
    "onnx": ("onnx", "model.onnx"),                   # ONNX through tf2onnx (pip install 'devise[export]')
}
