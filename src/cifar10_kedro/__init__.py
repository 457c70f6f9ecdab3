"""cifar10-kedro"""

from cifar10_kedro._quiet import quiet_third_party_noise

__version__ = "0.1"

# First, before anything imports TensorFlow or creates Kedro's config loader.
quiet_third_party_noise()
