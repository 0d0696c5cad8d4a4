"""Tests of the world process (infra/world): the base chain, the pix rail, /_sim, scripts, webhooks."""
