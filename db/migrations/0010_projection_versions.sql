-- Which version of its projection's code built each read model. The code declares its
-- version (projections/orders_projection.py VERSION, projections/stats_projection.py
-- VERSION); when it is newer than the one recorded here, the scheduler rebuilds the
-- projection into shadow tables while the old tables serve, and the swap records the new
-- version (projections/rebuild.py). A follower that creates its row records its own.
ALTER TABLE projection_checkpoints ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1;

-- Migration 0009 brought existing orders rows to what version 2 builds (the explorer link
-- and the cancellation, filled from the log).
UPDATE projection_checkpoints SET version = 2 WHERE name = 'orders';
