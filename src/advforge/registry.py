"""A tiny name -> factory registry (timm style) shared by datasets, models and attacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from advforge.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps snake_case names to factories.

    Example:
        >>> attacks = Registry("attack")
        >>> @attacks.register("fgsm")
        ... class FGSM: ...
        >>> attacks.create("fgsm")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(self.names())
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
