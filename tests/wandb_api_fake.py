"""A stand-in for wandb's public Api runs, shared by the W&B tests."""
import types


class ApiRun:
  """What `export` reads of a wandb.apis.public.Run (attribute for attribute)."""

  def __init__(self, recorded):
    self._recorded = recorded
    self.id, self.name, self.group, self.state = (
        recorded["id"], recorded["name"], recorded["group"], recorded["state"])
    self.config = recorded["config"]
    # The public Api's summary is a mapping type, not a dict.
    self.summary = types.MappingProxyType(recorded["summary"])
    self.scanned = []

  def scan_history(self, keys=None, page_size=1000):
    del page_size
    self.scanned.append(keys)
    rows = self._recorded["history"]
    return iter([{k: r[k] for k in keys} for r in rows if all(k in r for k in keys)]
                if keys else rows)
