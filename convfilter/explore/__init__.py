"""``convfilter explore``: a local web page on which the real layer answers every change of a control.

* :mod:`~convfilter.explore.state`: the view as one value, read from and written to the URL query;
* :mod:`~convfilter.explore.session`: decoded pictures, computed results, the numbers behind a pixel;
* :mod:`~convfilter.explore.code`: the Keras code of the view;
* :mod:`~convfilter.explore.web`: the HTTP server on 127.0.0.1 with its token; ``static/`` is the page.
"""
