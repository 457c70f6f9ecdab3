"""cifar10-kedro"""

from cifar10_kedro._quiet import quiet_third_party_noise
from cifar10_kedro.hardware import use_onednn

__version__ = "0.1"

# First, before anything imports TensorFlow or creates Kedro's config loader.
quiet_third_party_noise()
use_onednn()
