"""The pair's checkout of a site repository: clone/fetch, branch preparation, commit and push.

One checkout per (project, user) lives at ``root/project/user/checkout`` and is reused across commands and
threads; a thread is a branch. Every git call runs with ``GIT_CEILING_DIRECTORIES`` at the checkout's parent
so that, whatever state the checkout is in, git can never walk up into an enclosing repository (the worker
may itself run inside a git checkout). Identity is written to the repository's own config, never global.

A command always starts from its branch as last *pushed* (or the default branch for a new thread). What a run
that did not finish left behind -- uncommitted changes on whichever branch, local commits the remote lacks --
is kept aside on a WIP ref of its own (``refs/webordinary/wip/{branch}/{time}-{commit}``, pushed to the remote
when it can be, so it is not stranded in one workspace) and never mixed into the command: agents are not
idempotent, and an instruction run over its own half-done edit finds nothing to do, or does it twice.
Two kinds of unpushed commit are built on instead of kept aside: an *interrupted* command's WIP commit (the
graceful path: its instruction is carried into the next command, which continues its work), and the command's
own finished commit (its push failed: that is the instruction done exactly once, and the retry publishes it).

Before the command, the branch takes the default branch's newer commits (the live site moved on) when they
merge cleanly; when they do not, nothing is resolved by picking a side: the merge is abandoned, the command runs
on the branch as it was, and :attr:`Workspace.behind` says how far behind it is and which files conflict. A push
the remote rejects (the branch moved there) fetches, merges the remote's commits when they merge cleanly, and
tries again; it never forces. Both merges are commits of our own, marked with the ``Brings-In`` trailer.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import git

from container.worker.editors import is_excluded, normalise_excluded
from workflows import replies
from workflows.errors import NothingToChangeError, PushFailedError, RepositoryError
from workflows.models import PROJECT_ID_RE, USER_ID_RE, BranchBehind, KeptAside, LeftoverKind, Project

log = logging.getLogger("webordinary.worker.workspace")

WIP_MESSAGE = "WIP: recovered uncommitted work"
WIP_REF_PREFIX = "refs/webordinary/wip"
# The trailer that marks an interrupted command's WIP commit (job.wip_message writes it; prepare builds on it).
INTERRUPTED_TRAILER = "Interrupted-By"
# The trailer of our own merge commits (the default branch's news, or the remote's after a rejected push).
BRINGS_IN_TRAILER = "Brings-In"
# A rejected push is fetched, merged and tried again this many times in all before the command fails.
PUSH_ATTEMPTS = 3
_REJECTED = ("non-fast-forward", "fetch first", "stale info")  # the branch moved on the remote
# Keeping leftovers on the remote is a courtesy, not a step a command should wait long for.
WIP_PUSH_TIMEOUT_S = 60.0
# Network operations get a hard limit so a hung remote cannot hold the worker forever.
NETWORK_TIMEOUT_S = 300.0
_STDERR_TAIL_LINES = 15


def _tail(text: str, lines: int = _STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _literal(prefixes: list[str]) -> list[str]:
    # A project's outputDir is configuration, not a pattern: "*" must not make git clean remove everything.
    return [f":(literal){prefix}" for prefix in prefixes]


def git_error(exc: git.GitCommandError) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    return _tail(stderr.strip().removeprefix("stderr:").strip().strip("'")) or str(exc)


class Workspace:
    @classmethod
    def for_command(
        cls, root: Path, project: Project, user_id: str, identity: tuple[str, str], git_token: str = ""
    ) -> Workspace:
        """The pair's checkout of ``project``'s repository."""
        return cls(
            root, project.projectId, user_id, project.repoUrl, project.defaultBranch, identity, git_token=git_token
        )

    def __init__(
        self,
        root: Path,
        project_id: str,
        user_id: str,
        repo_url: str,
        default_branch: str,
        identity: tuple[str, str],
        git_token: str = "",
    ) -> None:
        # The ids become path segments: only the validated shapes may get that far.
        if not PROJECT_ID_RE.fullmatch(project_id) or not USER_ID_RE.fullmatch(user_id):
            raise RepositoryError(f"Unsafe workspace ids: {project_id!r}/{user_id!r}")
        self.path = Path(root).resolve() / project_id / user_id / "checkout"
        self.repo_url = repo_url
        self.default_branch = default_branch
        self.identity = identity
        self._git_token = git_token
        self._repo: git.Repo | None = None
        #: What the last :meth:`prepare` kept aside.
        self.kept_aside: list[KeptAside] = []
        #: Set by :meth:`prepare` when the default branch's newer commits could not be merged into the branch.
        self.behind: BranchBehind | None = None

    # --- environment --------------------------------------------------------------------------------------

    @property
    def git_env(self) -> dict[str, str]:
        name, email = self.identity
        return {
            "GIT_CEILING_DIRECTORIES": str(self.path.parent),
            "GIT_TERMINAL_PROMPT": "0",  # a credential prompt would hang the worker
            # Explicit, so a stray GIT_AUTHOR_* in the worker's environment cannot override the repo identity.
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            **self._credentials(),
        }

    def _credentials(self) -> dict[str, str]:
        """The git token, for HTTPS remotes, as an Authorization header in the environment of the worker's own
        git calls only: never in .git/config or a credential file an agent could read, never in the
        environment agents and builds get (``sanitised_env`` drops it)."""
        if not self._git_token or not self.repo_url.lower().startswith("https://"):
            return {}
        basic = base64.b64encode(f"x-access-token:{self._git_token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            raise RepositoryError("The workspace has not been prepared.")
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    # --- prepare ------------------------------------------------------------------------------------------

    def prepare(
        self, branch: str, exclude: set[str] | None = None, message_id: str = "", *, take_default: bool = True
    ) -> git.Repo:
        """Clone or fetch, keep aside what an unfinished run left, and check out ``branch`` at its last pushed
        state (see the module's doc). What was kept aside is in :attr:`kept_aside` afterwards.

        ``exclude`` names disposable directories (the build output): their contents are reset to the commit
        before anything else, so stale output from another thread is never published, committed or kept.
        ``message_id`` is the command's: its own finished commit, if its push failed, is built on.
        ``take_default``: merge the default branch's newer commits (not for PUBLISH and UNDO, which act on the
        branch exactly as the owner saw it).
        """
        self._check_branch_name(branch)
        self.close()
        self.kept_aside = []
        self.behind = None
        repo = self._open_or_clone()
        self._repo = repo
        self._configure(repo)
        self._remove_stale_lock(repo)
        self._fetch(repo)
        self._discard_output(repo, normalise_excluded(exclude or set()))
        # The refs this needs, read in one git call (the default branch's is read again if asked anew below).
        refs = commits_of(repo, [f"refs/remotes/origin/{branch}", f"refs/heads/{branch}", self._default_ref()])
        start = self._start_point(repo, branch, refs)
        left = self._keep_uncommitted(repo)
        base = self._keep_unpushed(repo, branch, start, message_id, refs.get(f"refs/heads/{branch}"))
        # -f: the worktree's changes are kept aside already. --no-track: the thread branch pushes to its own
        # name, never to the default branch. clean -fd: untracked files were kept aside too (ignored ones, such
        # as installed dependencies, stay); with nothing left there is nothing to clean.
        repo.git.checkout("-f", "--no-track", "-B", branch, base, "--")
        if left:
            repo.git.clean("-fd")
        self._push_kept_aside(repo)
        if take_default:
            self.behind = self._take_default(repo, message_id, refs.get(self._default_ref()))
        return repo

    def _check_branch_name(self, branch: str) -> None:
        if not _valid_branch_name(branch):
            raise RepositoryError(f"Invalid branch name {branch!r}.")

    def _open_or_clone(self) -> git.Repo:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_partial_clones()
        if self.path.exists():
            repo = self._open()
            if repo is not None:
                return repo
            # Not a checkout of its own (never from us: clones are renamed into place whole). Keep it aside
            # for inspection rather than deleting someone's files, and start over.
            aside = self.path.with_name(f"checkout.broken-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}")
            self.path.rename(aside)
        self._clone()
        repo = self._open()
        if repo is None:
            raise RepositoryError(f"The clone of {self.repo_url} is not usable.")
        return repo

    def _open(self) -> git.Repo | None:
        """The checkout's own repository, or None if ``path`` is not the top of a working tree."""
        if not (self.path / ".git").exists():
            return None
        try:
            repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            return None
        repo.git.update_environment(**self.git_env)
        if repo.working_tree_dir is None or Path(repo.working_tree_dir).resolve() != self.path:
            repo.close()
            return None
        return repo

    def _remove_partial_clones(self) -> None:
        for partial in self.path.parent.glob(".checkout-*.partial"):
            shutil.rmtree(partial, ignore_errors=True)

    def _clone(self) -> None:
        # Clone beside the final path and rename, so a failed clone never leaves a half-made checkout.
        partial = Path(tempfile.mkdtemp(prefix=".checkout-", suffix=".partial", dir=self.path.parent))
        try:
            git.Git(str(self.path.parent)).clone(
                "--origin",
                "origin",
                "--",
                self.repo_url,
                str(partial),
                env=self.git_env,
                kill_after_timeout=NETWORK_TIMEOUT_S,
            )
            partial.rename(self.path)
        except git.GitCommandError as exc:
            raise RepositoryError(f"Could not clone the site's repository: {git_error(exc)}") from exc
        except OSError as exc:
            raise RepositoryError(f"Could not set up the checkout: {exc}") from exc
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)

    def _configure(self, repo: git.Repo) -> None:
        name, email = self.identity
        # A global commit.gpgsign would make every commit wait for a key the worker does not have.
        wanted = {("user", "name"): name, ("user", "email"): email, ("commit", "gpgsign"): "false"}
        reader = repo.config_reader("repository")
        if any(reader.get(*option, fallback=None) != value for option, value in wanted.items()):
            with repo.config_writer("repository") as config:  # only when it differs: a write takes a lock
                for (section, option), value in wanted.items():
                    config.set_value(section, option, value)
        origin = repo.remote("origin") if "origin" in [r.name for r in repo.remotes] else None
        if origin is None:
            repo.create_remote("origin", self.repo_url)
        elif origin.url != self.repo_url:
            # The project may have moved its repository since this checkout was made.
            origin.set_url(self.repo_url)

    @staticmethod
    def _remove_stale_lock(repo: git.Repo) -> None:
        # A crash mid-command leaves index.lock behind and every later git call would fail. The worker owns
        # this checkout exclusively, so no live git process can hold it.
        lock = Path(repo.git_dir) / "index.lock"
        if lock.exists():
            lock.unlink()

    @staticmethod
    def _fetch(repo: git.Repo) -> None:
        try:
            repo.git.fetch("origin", "--prune", kill_after_timeout=NETWORK_TIMEOUT_S)
        except git.GitCommandError as exc:
            raise RepositoryError(f"Could not fetch the site's repository: {git_error(exc)}") from exc

    @staticmethod
    def _discard_output(repo: git.Repo, prefixes: list[str]) -> None:
        for spec in _literal(prefixes):
            if repo.head.is_valid() and repo.git.ls_files("--", spec):
                repo.git.checkout("HEAD", "--", spec)
            repo.git.clean("-fdx", "--", spec)

    def _start_point(self, repo: git.Repo, branch: str, refs: dict[str, str]) -> str:
        """The commit a command on ``branch`` starts from: the branch as pushed, else the default branch (the
        configured one, or, when none is configured, the one the remote names as its HEAD). ``refs``: what
        :func:`commits_of` read; the default branch's entry is updated when it is asked of the remote anew."""
        pushed = refs.get(f"refs/remotes/origin/{branch}")
        if pushed is not None:
            return pushed
        if not self.default_branch:
            with contextlib.suppress(git.GitCommandError):
                # A new thread: ask the remote for its default branch now (it may have changed since the clone;
                # one round trip, only for a thread's first command).
                repo.git.remote("set-head", "origin", "--auto", kill_after_timeout=NETWORK_TIMEOUT_S)
            refs.pop(self._default_ref(), None)
            if (asked := resolve(repo, self._default_ref())) is not None:
                refs[self._default_ref()] = asked
        sha = refs.get(self._default_ref())
        if sha is not None:
            return sha
        if self.default_branch:
            raise RepositoryError(f'The site\'s repository has no "{self.default_branch}" branch to start from.')
        raise RepositoryError("The site's repository has no default branch to start from.")

    def _default_ref(self) -> str:
        return f"refs/remotes/origin/{self.default_branch}" if self.default_branch else "refs/remotes/origin/HEAD"

    def _take_default(self, repo: git.Repo, message_id: str, default: str | None) -> BranchBehind | None:
        """Merge the default branch's commits (``default``) the branch lacks, when they merge cleanly; else
        abandon the merge and say how far behind the branch is and where they conflict."""
        if default is None or is_ancestor(repo, default, "HEAD"):
            return None
        if message_id and made_for(repo.head.commit, message_id):
            return None  # a retry of a finished command publishes exactly that commit, nothing mixed in
        name = self.default_branch or repo.git.rev_parse("--abbrev-ref", "refs/remotes/origin/HEAD").split("/", 1)[-1]
        conflicts = self._merge(repo, default, f"Bring in the latest of {name}", f"origin/{name}")
        if conflicts is None:
            return None
        return BranchBehind(commits=int(repo.git.rev_list("--count", f"HEAD..{default}")), conflicts=conflicts)

    @staticmethod
    def _merge(repo: git.Repo, commit: str, subject: str, brings_in: str) -> list[str] | None:
        """Merge ``commit`` into HEAD (fast-forward when HEAD has nothing of its own, else a merge commit of ours).
        None when merged; else the merge is abandoned, the worktree is as it was, and the conflicting files are
        returned (empty when git refused for another reason)."""
        try:
            repo.git.merge("--no-edit", "--no-verify", "-m", f"{subject}\n\n{BRINGS_IN_TRAILER}: {brings_in}", commit)
        except git.GitCommandError:
            conflicts = sorted(p for p in repo.git.diff("--name-only", "--diff-filter=U", "-z").split("\0") if p)
            with contextlib.suppress(git.GitCommandError):
                repo.git.merge("--abort")
            return conflicts
        return None

    def _keep_uncommitted(self, repo: git.Repo) -> bool:
        """Commit what is in the worktree (never a stash: stashes are invisible and easily lost) without moving
        any branch, and keep that commit on a WIP ref named for the branch it was left on. Whether anything
        was left."""
        # One status for what is_dirty(untracked_files=True) asks in three: staged, unstaged and untracked.
        if not repo.git.status("--porcelain", "--untracked-files=normal", "--ignore-submodules=none"):
            return False
        on = "detached" if not repo.head.is_valid() or repo.head.is_detached else repo.active_branch.name
        repo.git.add("-A")
        tree = repo.git.write_tree()
        parents = ["-p", "HEAD"] if repo.head.is_valid() else []
        message = (
            f"{WIP_MESSAGE}\n\nLeft in the checkout on {on} by a run that did not finish, and kept aside so that "
            "the next command starts from the pushed branch."
        )
        sha = str(repo.git.commit_tree(tree, *parents, "-m", message))
        self._keep(repo, on, sha, "uncommitted")
        return True

    def _keep_unpushed(self, repo: git.Repo, branch: str, start: str, message_id: str, local: str | None) -> str:
        """Where ``branch`` starts: ``start`` once the local commits it lacks (``local``: the local branch's
        commit) are kept aside; or the local branch, when what it adds to ``start`` is only interrupted
        commands' WIP and this command's finished commit."""
        if local is None or local == start or is_ancestor(repo, local, start):
            return start  # the remote has everything the local branch has
        if is_ancestor(repo, start, local) and self._continues(repo, start, local, message_id):
            return local
        self._keep(repo, branch, local, "unpushed")
        return start

    @staticmethod
    def _continues(repo: git.Repo, start: str, local: str, message_id: str) -> bool:
        # Newest first, our own merges seen as one step (the commits they brought in are pushed elsewhere).
        commits = list(repo.iter_commits(f"{start}..{local}", first_parent=True))
        for position, commit in enumerate(commits):
            if has_trailer(commit, INTERRUPTED_TRAILER) or has_trailer(commit, BRINGS_IN_TRAILER):
                continue
            if position == 0 and message_id and made_for(commit, message_id):
                continue
            return False
        return True

    def _keep(self, repo: git.Repo, on: str, sha: str, kind: LeftoverKind) -> None:
        ref = f"{WIP_REF_PREFIX}/{on}/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{sha[:12]}"
        repo.git.update_ref(ref, sha)
        self.kept_aside.append(KeptAside(ref=ref, commit=sha, kind=kind))
        log.warning("kept aside %s work of an unfinished run on %s (%s)", kind, ref, sha[:12])

    def _push_kept_aside(self, repo: git.Repo) -> None:
        """Best effort: on the remote, the leftovers outlive this workspace."""
        if not self.kept_aside:
            return
        refspecs = [f"{kept.ref}:{kept.ref}" for kept in self.kept_aside]
        try:
            repo.git.push("origin", *refspecs, kill_after_timeout=WIP_PUSH_TIMEOUT_S)
        except git.GitCommandError as exc:
            log.warning("could not push the kept-aside work (it stays in this workspace): %s", git_error(exc))
            return
        self.kept_aside = [kept.model_copy(update={"pushed": True}) for kept in self.kept_aside]

    # --- commit and push ----------------------------------------------------------------------------------

    def commit(self, message: str, exclude: set[str]) -> tuple[str, list[str]]:
        """Stage every change (honouring .gitignore and ``exclude``) and commit it; (sha, files changed)."""
        repo = self.repo
        prefixes = normalise_excluded(exclude)
        # Add everything, then unstage the excluded dirs: an ":(exclude)dist" pathspec makes git add fail
        # outright when dist/ also appears in .gitignore. Unstaging also covers paths an editor staged itself.
        repo.git.add("-A")
        staged = self._staged(repo)
        if any(is_excluded(path, prefixes) for path in staged):
            if repo.head.is_valid():
                repo.git.reset("-q", "--", *_literal(prefixes))
            else:
                repo.git.rm("--cached", "-r", "-q", "--ignore-unmatch", "--", *_literal(prefixes))
            staged = self._staged(repo)
        if not staged:
            raise NothingToChangeError(replies.NO_FILE_CHANGED)
        # Through a file: an instruction can exceed the argument size limit, and --cleanup=whitespace keeps
        # lines starting with "#" (markdown headings) that the default cleanup would drop.
        message_file = Path(repo.git_dir) / "WEBORDINARY_COMMIT_MSG"
        message_file.write_text(message, encoding="utf-8")
        try:
            repo.git.commit("--no-verify", "--cleanup=whitespace", "-F", str(message_file))
        finally:
            message_file.unlink(missing_ok=True)
        return head_sha(repo), staged

    @staticmethod
    def _staged(repo: git.Repo) -> list[str]:
        return [path for path in repo.git.diff("--cached", "--name-only", "-z").split("\0") if path]

    def push(self, branch: str) -> bool:
        """Push ``branch``; when the remote rejects it because the branch moved there, fetch, merge what it has
        (only if that merges cleanly) and try again. Never forces. True when HEAD changed (a merge was made)."""
        repo = self.repo
        merged = False
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            try:
                repo.git.push(
                    "origin", f"refs/heads/{branch}:refs/heads/{branch}", kill_after_timeout=NETWORK_TIMEOUT_S
                )
                return merged
            except git.GitCommandError as exc:
                error = git_error(exc)
                if attempt == PUSH_ATTEMPTS or not any(mark in error for mark in _REJECTED):
                    raise PushFailedError(f"Could not push {branch}: {error}") from exc
            try:
                repo.git.fetch(
                    "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}", kill_after_timeout=NETWORK_TIMEOUT_S
                )
            except git.GitCommandError as exc:
                raise PushFailedError(f"Could not fetch {branch} after a rejected push: {git_error(exc)}") from exc
            theirs = resolve(repo, f"refs/remotes/origin/{branch}")
            if theirs is None or is_ancestor(repo, theirs, "HEAD"):
                continue  # the remote branch went away or was already in ours: try again as is
            conflicts = self._merge(repo, theirs, "Bring in what was pushed meanwhile", f"origin/{branch}")
            if conflicts is not None:
                raise PushFailedError(
                    f"Could not push {branch}: it moved on the remote and does not merge cleanly "
                    f"({', '.join(conflicts) or 'git refused the merge'})."
                )
            merged = True
        raise PushFailedError(f"Could not push {branch}.")  # unreachable: the last attempt raises or returns

    def head(self) -> str:
        return head_sha(self.repo)

    def default_commit(self) -> str | None:
        """The default branch's commit as last fetched (what the live site is built from)."""
        return resolve(self.repo, self._default_ref())

    def head_commit_for(self, message_id: str) -> tuple[str, list[str]] | None:
        """HEAD's (sha, files) if HEAD was made for ``message_id`` (its ``Message:`` trailer), else None.

        A retried command finds its own earlier commit here instead of editing a second time: on the pushed
        branch (the worker died after pushing, before answering), or built on by :meth:`prepare` (the push failed).
        """
        repo = self.repo
        try:
            # HEAD and its first parents, newest first, in one git call (this runs before every command).
            listing = repo.git.log("--first-parent", f"-n{_OWN_MERGES_LIMIT}", "--format=%H%x00%B%x1e", "HEAD")
        except git.GitCommandError:
            return None  # no commit yet
        chain = [entry.lstrip("\n").partition("\0") for entry in listing.split("\x1e")]
        commits = [(sha, message) for sha, _, message in chain if sha]
        head = commits[0][0]
        # Our own merges on top (a rejected push brought in the remote's commits) are part of the finished work.
        position = 0
        while _has(trailers_in(commits[position][1]), BRINGS_IN_TRAILER) and position + 1 < len(commits):
            position += 1
        sha, message = commits[position]
        if not _names_message(trailers_in(message), message_id):
            return None
        files = repo.git.diff_tree("--no-commit-id", "--name-only", "-r", "-z", "--root", sha)
        return head, [p for p in files.split("\0") if p]


# More than a push's attempts can make: each rejected push adds at most one merge of ours on top.
_OWN_MERGES_LIMIT = 16


@functools.lru_cache(maxsize=1024)
def _valid_branch_name(branch: str) -> bool:
    """git's own rules (``check-ref-format --branch``), asked once per name: a thread's branch is named the
    same for every command of the thread."""
    if not branch or branch.startswith("-") or "@{" in branch:  # no "@{-1}": that names another branch
        return False
    try:
        git.Git().check_ref_format("--branch", branch, env={"GIT_CONFIG_NOSYSTEM": "1"})
    except git.GitCommandError:
        return False
    return True


def head_sha(repo: git.Repo) -> str:
    """HEAD's commit, read from the ref files (``repo.head.commit`` would start a ``cat-file`` process)."""
    try:
        return str(git.SymbolicReference.dereference_recursive(repo, "HEAD"))
    except (ValueError, OSError):  # a ref store GitPython cannot read: ask git
        return str(repo.git.rev_parse("--verify", "HEAD"))


def commits_of(repo: git.Repo, refs: list[str]) -> dict[str, str]:
    """Each of ``refs`` (full names: ``refs/heads/...``) that names a commit -> that commit, in one git call;
    a ref that names none is absent. A symbolic ref (``refs/remotes/origin/HEAD``) gives its target's."""
    listing = repo.git.for_each_ref("--format=%(refname)%00%(objecttype)%00%(objectname)", *refs)
    found: dict[str, str] = {}
    for line in listing.splitlines():
        name, kind, sha = line.split("\0")
        if name in refs and kind == "commit":  # a pattern also matches the refs below it: keep exact names
            found[name] = sha
    return found


def resolve(repo: git.Repo, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it names none."""
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}"))
    except git.GitCommandError:
        return None


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    try:
        repo.git.merge_base("--is-ancestor", ancestor, descendant)
    except git.GitCommandError:
        return False
    return True


def trailers_in(message: str) -> str:
    """A commit message's trailers: its last paragraph."""
    return message.strip().split("\n\n")[-1]


def trailers_of(commit: git.Commit) -> str:
    message = commit.message if isinstance(commit.message, str) else commit.message.decode("utf-8", "replace")
    return trailers_in(message)


def made_for(commit: git.Commit, message_id: str) -> bool:
    """Whether ``commit`` is a command's finished commit for ``message_id`` (its ``Message:`` trailer)."""
    return _names_message(trailers_of(commit), message_id)


def has_trailer(commit: git.Commit, name: str) -> bool:
    return _has(trailers_of(commit), name)


def _names_message(trailers: str, message_id: str) -> bool:
    return bool(re.search(rf"^Message: {re.escape(message_id)}$", trailers, re.MULTILINE))


def _has(trailers: str, name: str) -> bool:
    return bool(re.search(rf"^{re.escape(name)}: \S", trailers, re.MULTILINE))
