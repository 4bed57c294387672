"""Import every table module so that Base.metadata knows the whole schema (Alembic, tests)."""

from clm.access import models as access  # noqa: F401
from clm.analytics import models as analytics  # noqa: F401
from clm.channels import models as channels  # noqa: F401
from clm.commerce import models as commerce  # noqa: F401
from clm.customers import models as customers  # noqa: F401
from clm.db.base import Base
from clm.jobs import models as jobs  # noqa: F401
from clm.journeys import models as journeys  # noqa: F401
from clm.lifecycle import models as lifecycle  # noqa: F401
from clm.loyalty import models as loyalty  # noqa: F401
from clm.outbox import models as outbox  # noqa: F401
from clm.sales import models as sales  # noqa: F401
from clm.segments import models as segments  # noqa: F401
from clm.service import desk_models as service_desk  # noqa: F401
from clm.service import models as service  # noqa: F401
from clm.service.mail import models as service_mail  # noqa: F401
from clm.tracking import models as tracking  # noqa: F401

metadata = Base.metadata
