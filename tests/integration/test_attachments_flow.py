"""An image attached to the mail reaches the agent inside the checkout, and only what the agent uses is
committed."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path

import git
import pytest

from workflows import names, projects
from workflows.adapters.aws import client
from workflows.local import operations
from workflows.local.demo import create_demo_repository
from workflows.local.stack import StackInfo

pytestmark = pytest.mark.integration
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_an_attached_image_is_in_uploads_for_the_agent_and_is_not_committed_by_itself(
    info: StackInfo, tmp_path: Path
) -> None:
    repo = create_demo_repository(tmp_path)
    # The agent: say what it was told about uploads, then use the photo on the site.
    editor = (
        "command:grep -i uploads > /dev/null && mkdir -p src/img && cp uploads/*.png src/img/ && echo used the photo"
    )
    project = projects.make_project(
        "gallery", str(repo), ["owner@example.com"], editor=editor, build_command="python3 build.py"
    )
    projects.save_project(client("dynamodb"), names.PROJECTS_TABLE.local_name, project)
    msg = EmailMessage()
    msg["From"] = "owner@example.com"
    msg["To"] = "gallery@mail.webordinary.test"
    msg["Subject"] = "New photo"
    msg["Message-ID"] = "<photo-1@example.com>"
    msg.set_content("Please put the attached photo on the home page.\n")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="../../shop front.png")

    outcome = operations.deliver_email(info, bytes(msg))
    assert outcome.accepted and outcome.executionArn
    described = operations.wait_for_execution(client("stepfunctions"), outcome.executionArn, 120)
    assert described["status"] == "SUCCEEDED", operations.trace(client("stepfunctions"), outcome.executionArn)
    head = git.Repo(repo).commit(f"thread-{outcome.threadId}")
    paths = [b.path for b in head.tree.traverse() if b.type == "blob"]  # type: ignore[union-attr]
    images = [p for p in paths if p.startswith("src/img/")]
    assert len(images) == 1 and ".." not in images[0] and "/" not in images[0][len("src/img/") :]
    assert (head.tree / images[0]).data_stream.read() == PNG
    assert not any(p.startswith(("uploads/", "webordinary-uploads/")) for p in paths)
