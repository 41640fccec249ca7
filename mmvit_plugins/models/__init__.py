"""Backbones and necks (one family per file). The first ones arrive with their own issues; the
op modules in :mod:`mmvit_plugins.ops` are registered already."""
