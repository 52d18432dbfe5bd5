from integrations.models import Base
from te_shared.migrations import run_env

run_env(Base.metadata)
