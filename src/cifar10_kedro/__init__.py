"""cifar10-kedro"""

__version__ = "0.1"
