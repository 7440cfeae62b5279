"""Running a job on a Dask cluster: many files (``--dask``) and Zarr arrays larger than memory.

* :mod:`~convfilter.cluster.connect`: the ``[dask]`` extra, scheduler addresses, ``local:N``;
* :mod:`~convfilter.cluster.tasks`: what runs on a worker (the same
  :class:`~convfilter.run.runner.Runner` as a local batch) and the plugin that
  imports TensorFlow once per worker;
* :mod:`~convfilter.cluster.batch`: :class:`ClusterRunner`, a drop-in for the
  local runner that sends tasks of several files each;
* :mod:`~convfilter.cluster.zarr_arrays`: Zarr arrays filtered chunk by chunk.

Nothing here imports TensorFlow in the client process.
"""
