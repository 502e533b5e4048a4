"""The synthetic demo data set.

* :mod:`.scenario` - the demo scenario (events, mechanisms, stations, wells);
* :mod:`.waveforms` - synthetic event waveforms for the scenario;
* :mod:`.synth_archive` - a ToC2ME-shaped input folder built from the scenario.
"""
