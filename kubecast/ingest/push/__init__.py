"""HTTP push ingest: Smooth Streaming and CMAF (DASH-IF live ingest) POST/PUT."""
