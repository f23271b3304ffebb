"""models: everything Keras in devise (backbones, DeViSE head, hinge rank loss, training phases, bundles).

Never imports click or nltk.
"""
