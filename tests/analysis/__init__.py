"""Tests of coalmine.analysis."""
