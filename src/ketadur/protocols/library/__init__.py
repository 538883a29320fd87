"""The seed protocol library: one YAML file per protocol (see ``ketadur protocols list``)."""
