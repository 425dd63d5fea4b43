"""Link -> temporary file -> staging table -> checks -> atomic swap (download, load, versions, jobs)."""
