"""The synthetic trial's site and staff: every role the platform's permissions and signatures need.

NCT05906329 is a single-site study (Qianfoshan Hospital, Jinan); resistance is confirmed by two or more
deputy chief physicians (registry detailed description), so three are on the roster. :data:`SECOND_SITE` is
the demo's invention, so that site-scoped access has another site to be scoped against.
"""

from __future__ import annotations

from abscopal.domain import Role, Site, User

SITE = Site(code="QFS", name="The First Affiliated Hospital of Shandong First Medical University", country="CN")
#: A second site, for multi-site demos (``iter_cohort_chunks(..., sites=2)``): not part of the registered trial.
SECOND_SITE = Site(code="JNC", name="Jinan Central Hospital", country="CN", time_zone="Asia/Shanghai")

_ROSTER: tuple[tuple[str, str, Role], ...] = (
    ("dcp.zhang", "Zhang Jiandong", Role.DEPUTY_CHIEF_PHYSICIAN),
    ("dcp.li", "Li Wenjing", Role.DEPUTY_CHIEF_PHYSICIAN),
    ("dcp.wang", "Wang Haitao", Role.DEPUTY_CHIEF_PHYSICIAN),
    ("ro.liu", "Liu Yang", Role.RADIATION_ONCOLOGIST),
    ("ro.chen", "Chen Xiaomei", Role.RADIATION_ONCOLOGIST),
    ("ro.zhao", "Zhao Lei", Role.RADIATION_ONCOLOGIST),
    ("rad.sun", "Sun Hui", Role.RADIOLOGIST),
    ("rad.zhou", "Zhou Min", Role.RADIOLOGIST),
    ("rad.wu", "Wu Qiang", Role.RADIOLOGIST),
    ("crc.xu", "Xu Fang", Role.COORDINATOR),
    ("crc.ma", "Ma Li", Role.COORDINATOR),
    ("crc.hu", "Hu Jing", Role.COORDINATOR),
    ("dm.guo", "Guo Ying", Role.DATA_MANAGER),
    ("mon.he", "He Ping", Role.MONITOR),
    ("stat.lin", "Lin Tao", Role.STATISTICIAN),
    ("admin", "Trial administrator", Role.ADMIN),
)

USERS: tuple[User, ...] = tuple(User(u, name, role, SITE.code) for u, name, role in _ROSTER)


def usernames(role: Role) -> tuple[str, ...]:
    """Usernames of the roster's users with ``role``, in roster order."""
    return tuple(u.username for u in USERS if u.role is role)
