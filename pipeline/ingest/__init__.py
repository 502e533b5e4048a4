"""Stage 1 of the batch, ingest: raw inputs -> catalogue tables.

* :mod:`.toc2me` - the ToC2ME files -> events, mechanisms, stations, wells, stages;
* :mod:`.picks` - a user polarity-picks CSV -> ``polarities`` rows;
* :mod:`.fetch` - download of the public ToC2ME files, checked against ``toc2me_manifest.tsv``;
* :mod:`.regions` - the named, versioned regions and mechanism subsets (clusters).
"""
