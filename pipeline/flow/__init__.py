"""The batch runner: stages of a build as deterministic chunks of events on dask.distributed.

* :mod:`.cluster` - the Dask client: a LocalCluster (one single-threaded process per core)
  by default, an existing scheduler with ``--scheduler``/``FM_DASK_SCHEDULER``;
* :mod:`.chunks` - content-defined chunks of sorted event ids, input digests, and the chunk
  cache under ``<data-dir>/work`` that makes a re-run resume;
* :mod:`.runner` - runs one stage's chunks (cached ones skipped), with progress and with a
  failed chunk recorded instead of stopping the batch;
* :mod:`.picking_stage`, :mod:`.invert_stage` - the work of one chunk, run on a worker;
* :mod:`.deadline` - time limits for a single file or call inside a worker;
* :mod:`.single_stage` - the ``pick`` and ``invert`` commands on an existing data folder.

Every chunk writes its own Parquet part files and a ``done.json`` marker last; the driver
only ever holds per-chunk summaries, never traces.
"""
