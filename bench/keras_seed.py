"""The reference Keras script, run on TensorFlow 2 (CPU) as a user would run
it. Its only changes: the local IDX files of $MNISTD_DATA instead of the
download, argmax instead of the removed predict_classes, the plot written to
a file instead of a window, and timers around fit, evaluate and prediction.
Everything runs on 2 threads. Prints "keras.<key>=<value>" lines.

    MNISTD_DATA=dir build/venv-bench/bin/python bench/keras_seed.py [--plot FILE]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnist_idx  # noqa: E402

ap = argparse.ArgumentParser(description="the reference Keras script, timed")
ap.add_argument("--plot", help="write the 5x5 picture of predictions to this PNG")
ap.add_argument("--latency-calls", type=int, default=300)
ap.add_argument("--epochs", type=int, default=5, help="the script: 5")
args = ap.parse_args()

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
t_start = time.perf_counter()

# The data (the script: keras.datasets.mnist.load_data()).
data = mnist_idx.data_dir()
train_images, train_labels = mnist_idx.load(data, "train")
test_images, test_labels = mnist_idx.load(data, "t10k")
train_images = train_images.reshape((60000, 28, 28, 1)).astype("float32") / 255
test_images = test_images.reshape((10000, 28, 28, 1)).astype("float32") / 255

# The network, as the script builds it.
model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(32, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"),
    layers.Flatten(),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

t0 = time.perf_counter()
history = model.fit(train_images, train_labels, epochs=args.epochs, batch_size=64, validation_split=0.2,
                    verbose=2)
t1 = time.perf_counter()
test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
t2 = time.perf_counter()
print("Test accuracy:", test_acc)

# The script's picture: 25 test images with label and prediction
# (predict_classes is gone from Keras: argmax of predict).
predictions = np.argmax(model.predict(test_images[:25], verbose=0), axis=1)
if args.plot:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.figure(figsize=(10, 10))
    for i in range(25):
        plt.subplot(5, 5, i + 1)
        plt.xticks([])
        plt.yticks([])
        plt.grid(False)
        plt.imshow(test_images[i].reshape(28, 28), cmap=plt.cm.binary)
        plt.xlabel(f"Label: {test_labels[i]}, Predicted: {predictions[i]}")
    plt.savefig(args.plot)

# Single-image latency: the script's call (model.predict) and the direct
# call a serving user would make (model(x, training=False)).
def latency(fn):
    for i in range(20):
        fn(test_images[i:i + 1])
    lat = []
    for i in range(args.latency_calls):
        x = test_images[i % 10000:i % 10000 + 1]
        t = time.perf_counter()
        fn(x)
        lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1e6


lat_predict = latency(lambda x: model.predict(x, verbose=0))
lat_call = latency(lambda x: model(x, training=False).numpy())

print("keras.version=%s" % tf.__version__)
print("keras.threads=2")
print("keras.fit_seconds=%.3f" % (t1 - t0))
print("keras.epochs=%d" % args.epochs)
print("keras.train_samples_per_s=%.0f" % (args.epochs * 48000 / (t1 - t0)))
print("keras.recipe_seconds=%.3f" % (t2 - t_start))
print("keras.val_accuracy=%.4f" % history.history["val_accuracy"][-1])
print("keras.test_accuracy=%.4f" % test_acc)
print("keras.test_loss=%.4f" % test_loss)
print("keras.latency_us_predict=%.1f" % lat_predict)
print("keras.latency_us_median=%.1f" % lat_call)
