"""The lifecycle playbook's journeys and their templates, one TOML file each (read by clm.journeys.playbook)."""
