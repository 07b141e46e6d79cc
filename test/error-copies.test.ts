/**
 * Two copies of the errors module (two installs side by side, a dependency that bundles its own):
 * a refusal thrown by one copy is still the refusal it was for the other copy's adapters.
 */
import { describe, expect, it } from 'vitest'
import { asAuthError } from '../src/adapters/http-error.js'
import { renderAuthError } from '../src/index.js'
import { CaracalAuthError, isCaracalAuthError } from '../src/errors.js'

// A query string makes Vite load the module a second time: a distinct class with its own prototype.
const secondCopy = '../src/errors.js?second-copy'
const other = (await import(/* @vite-ignore */ secondCopy)) as typeof import('../src/errors.js')

describe('CaracalAuthError across copies of the module', () => {
  it('is recognised, and the adapters answer with its own code and description', () => {
    expect(other.CaracalAuthError).not.toBe(CaracalAuthError)
    const foreign = new other.CaracalAuthError('insufficient_scope', 'missing scope tool:call', {
      scope: ['tool:call'],
    })
    expect(foreign instanceof CaracalAuthError).toBe(false)
    expect(isCaracalAuthError(foreign)).toBe(true)
    expect(asAuthError(foreign)).toBe(foreign)
    const rendered = renderAuthError(foreign)
    expect(rendered.status).toBe(403)
    expect(rendered.body).toContain('missing scope tool:call')
  })

  it('is not claimed by look-alikes: a plain Error, or an object with the brand but no known code', () => {
    expect(isCaracalAuthError(new Error('insufficient_scope: x'))).toBe(false)
    const forged = Object.assign(new Error('x'), {
      [Symbol.for('caracal-fastmcp.CaracalAuthError')]: true,
      code: 'teapot',
    })
    expect(isCaracalAuthError(forged)).toBe(false)
    expect(asAuthError(forged).description).toBe('token could not be verified')
  })
})
