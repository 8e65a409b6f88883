"""The staff web portal: server-rendered pages, every asset served locally."""
