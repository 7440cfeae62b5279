"""The warm server and its client: ``convfilter`` calls without TensorFlow's start-up cost.

* :mod:`~convfilter.server.client`: the ``convfilter`` entry point; forwards a
  command to the server or runs it here (standard library only);
* :mod:`~convfilter.server.daemon`: the server, which runs each command through
  :func:`convfilter.cli.run_command` in the client's streams and directory;
* :mod:`~convfilter.server.protocol`: the messages; :mod:`~convfilter.server.paths`:
  the private socket directory and the server's identity.
"""
