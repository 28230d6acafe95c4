"""nerve-edge training (tf_keras on TensorFlow 2.21).

tensorflow-model-optimization prunes only tf_keras (Keras 2) models, and Keras 3 cannot load
tf_keras files, so train/ and convert/ use tf_keras throughout. The switch must be set before
TensorFlow is first imported, hence here, at package import. TensorFlow's own log noise is
hidden by the CLIs (edge.clikit.quiet_tensorflow; --verbose shows it).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
