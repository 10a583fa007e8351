"""The platform view (issue 12): a venue's parameters against a population and a scenario set.

``params`` the venue parameters (defaults + TOML overrides); ``scenarios`` the scenario set
(stored windows, shocks, Monte Carlo paths); ``run`` the parallel runs on the sweep executor;
``distribution`` the tail figures (shared with the lending platform view); ``recommend`` the
bracket table, caps and fund size; ``results`` the tables and the run folder; ``report`` the
HTML page. See docs/cascade.md, "Platform view".
"""
