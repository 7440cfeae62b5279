"""``convfilter animate``: a convolution drawn step by step, as the classic convolution-arithmetic animations.

:mod:`~convfilter.animation.steps` works out what every frame shows (pure
NumPy, from the same operation values the filtering commands run);
:mod:`~convfilter.animation.draw` draws the frames with Pillow and writes
the GIF or APNG.
"""
