from te_shared.migrations import run_env
from zoom_bridge.models import Base

run_env(Base.metadata)
